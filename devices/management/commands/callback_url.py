from django.core.management.base import BaseCommand, CommandError

from devices.selectors import device_by_path, device_callback_credentials


def print_credentials(out, device):
    url, token, full = device_callback_credentials(device)
    out.write(f"Callback URL:  {url}")
    out.write(f"Token:         {token}")
    out.write(f"Full URL:      {full}")
    out.write("")
    out.write("Post data as a device would:")
    out.write(
        f"  curl -X POST '{url}' -H 'Authorization: Bearer {token}' "
        "-H 'Content-Type: application/json' -d '{\"temperature\": 21.5}'"
    )


class Command(BaseCommand):
    help = "Print the callback URL and token of an HTTP device."

    def add_arguments(self, parser):
        parser.add_argument("user")
        parser.add_argument("device")

    def handle(self, *args, user, device, **options):
        found = device_by_path(username=user, identifier=device)
        if found is None:
            raise CommandError(f"user {user!r} has no device {device!r}")
        print_credentials(self.stdout, found)
