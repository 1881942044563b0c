"""Device drivers: one module per device kind, registered by kind in `controller.drivers.registry`."""
