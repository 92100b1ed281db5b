"""Cross-cutting building blocks every Strangler Shop process shares. Domain-free by rule."""
