"""The control core: authority, interlocks and the local fallback policy, as pure functions of their inputs."""
