"""The ASGI application uvicorn serves (`panels serve`, or `uvicorn app.asgi:app`)."""

from app.main import create_app

app = create_app()
