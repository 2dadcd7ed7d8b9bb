"""What single and group chat share: storing a message with its seq and pushing it,
revoking, and stored notifications."""
