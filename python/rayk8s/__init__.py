"""rayk8s replica SDK (stdlib only). The Serve API lands with the Serve data-plane issue."""
