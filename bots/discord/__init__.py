"""The Discord bot: flattr posts by reaction, slash commands, monthly summaries by DM."""
