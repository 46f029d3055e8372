"""The edge pattern: the Greengrass v2 component, its recipe and deployment."""
