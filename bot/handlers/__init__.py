"""One router per feature; ``bot.app`` assembles them in order."""
