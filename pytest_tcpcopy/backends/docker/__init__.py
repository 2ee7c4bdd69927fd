"""Docker plumbing for the Docker backend: the images (``images``) and run labels and reaping (``runs``).

``images`` imports the Docker SDK only where it catches its errors, so the CLI may import it for
defaults; ``runs`` imports the SDK. Nothing on the agent's own path (``intercept``, ``replay``)
imports either.
"""
