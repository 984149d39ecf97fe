"""The UI's routers; ``ui.install`` mounts them."""
