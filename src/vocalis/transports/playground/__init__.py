"""transports/playground"""
