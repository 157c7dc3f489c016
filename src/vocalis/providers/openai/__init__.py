"""providers/openai"""
