from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from devices.management.commands.callback_url import print_credentials
from devices.selectors import device_by_path
from devices.services import device_create


class Command(BaseCommand):
    help = "Create an HTTP device (and its user if needed) and print its callback URL and token."

    def add_arguments(self, parser):
        parser.add_argument("user", help="username that owns the device (created if missing)")
        parser.add_argument("device", help="device ID: 1 to 32 letters, digits, '_' or '-'")
        parser.add_argument("--name", default="", help="device name")
        parser.add_argument("--description", default="", help="device description")

    @transaction.atomic
    def handle(self, *args, user, device, name, description, **options):
        User = get_user_model()
        owner = User.objects.filter(username=user).first()
        if owner is None:
            owner = User(username=user)
            try:
                owner.full_clean(exclude=["password"])
            except ValidationError as exc:
                raise CommandError(f"invalid user {user!r}: {'; '.join(exc.messages)}") from None
            owner.set_unusable_password()
            owner.save()
            self.stderr.write(
                f"Created user {user!r} (set a password with: manage.py changepassword {user})."
            )
        if device_by_path(username=user, identifier=device):
            raise CommandError(f"user {user!r} already has a device {device!r}")
        try:
            created = device_create(
                owner=owner, identifier=device, name=name, description=description
            )
        except ValidationError as exc:
            raise CommandError(f"invalid device: {'; '.join(exc.messages)}") from None
        print_credentials(self.stdout, created)
