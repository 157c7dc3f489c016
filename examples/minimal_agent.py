from vocalis import Agent

agent = Agent(instructions="You are a friendly voice assistant. Keep every answer short.")
