"""Running many sites on one broker or a cluster: roles and credentials on RabbitMQ (and later, provisioning)."""
