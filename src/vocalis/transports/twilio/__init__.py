"""transports/twilio"""
