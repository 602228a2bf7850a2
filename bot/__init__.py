"""The Telegram face of the article index: ``python -m bot`` (polling or webhook) and
``python -m bot chat`` (the same bot in the terminal). Wiring lives in ``bot.app``."""
