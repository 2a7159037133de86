"""The Telegram bot: reactions, channel buttons and commands in, monthly summaries out."""
