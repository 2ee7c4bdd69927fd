"""Docker plumbing for the Docker backend: images (base and agent), run labels and reaping.

Imports the Docker SDK; nothing on the agent's own path (``intercept``, ``replay``) imports this.
"""
