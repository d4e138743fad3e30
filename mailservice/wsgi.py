import os

from django.core.wsgi import get_wsgi_application

from mailservice.envfile import load_env_file

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mailservice.settings")
load_env_file()
application = get_wsgi_application()
