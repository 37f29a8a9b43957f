"""Learning the generator with PyTorch: collect and corpus -> dataset -> train -> export ->
evaluate. Imports ``musegan_live.representation``; the runtime never imports this package."""
