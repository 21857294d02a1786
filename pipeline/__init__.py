"""Real-time recommendations: Kafka events, Faust agents, River models, Redis state."""

__version__ = "0.1.0"
