import os

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.utils.crypto import get_random_string


class Command(BaseCommand):
    help = (
        "Create the first administrator if there is none, and print how to log in. "
        "The password comes from ADMIN_PASSWORD, or is generated once and kept in var/."
    )

    def add_arguments(self, parser):
        parser.add_argument("--username", default=os.environ.get("ADMIN_USERNAME", "admin"))

    def handle(self, *args, username, **options):
        User = get_user_model()
        password_file = settings.VAR_DIR / "admin_password"
        user = User.objects.filter(username=username).first()
        if user is None:
            password = os.environ.get("ADMIN_PASSWORD") or get_random_string(16)
            User.objects.create_superuser(username=username, email="", password=password)
            if not os.environ.get("ADMIN_PASSWORD"):
                password_file.write_text(password + "\n")
                password_file.chmod(0o600)
        if password_file.exists():
            shown = password_file.read_text().strip()
        elif os.environ.get("ADMIN_PASSWORD"):
            shown = "the ADMIN_PASSWORD you set"
        else:
            shown = "the password you chose"
        self.stdout.write("")
        self.stdout.write(f"  Console:  {settings.PUBLIC_URL}/")
        self.stdout.write(f"  Admin:    {settings.PUBLIC_URL}/admin/")
        self.stdout.write(f"  Login:    {username} / {shown}")
        self.stdout.write(f"  (initial password kept in {password_file})")
        self.stdout.write("")
