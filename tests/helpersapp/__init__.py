"""An app whose one command names its helpers like the old tracking internals."""
