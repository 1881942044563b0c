"""`hearth probe`: commissioning. Which devices answer, what each channel reads raw and converted, and a relay
switched on request with its read-back."""
