"""Real-time FX: rate providers, the refresh that writes global reference rates, and reads."""
