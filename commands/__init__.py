"""Write side: command structs, their handlers and the event-sourced application."""
