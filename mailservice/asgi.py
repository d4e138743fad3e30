import os

from django.core.asgi import get_asgi_application

from mailservice.envfile import load_env_file

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mailservice.settings")
load_env_file()
application = get_asgi_application()
