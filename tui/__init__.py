"""rp-chat: the Textual terminal app for roleplay chats on top of rp_context (no prompt logic here)."""
