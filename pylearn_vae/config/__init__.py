"""Configuration: instantiating objects from Pylearn2-style YAML."""
