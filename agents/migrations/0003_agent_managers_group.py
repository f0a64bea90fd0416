"""The "Agent managers" group: may create, change (and activate) and delete agents.

Agents are shared configuration: an active version's prompt is what every user's executions run
with, so changing them needs these permissions; add trusted users to the group in the admin.
"""

from django.db import migrations

GROUP = "Agent managers"
ACTIONS = {
    "add": "Can add agent",
    "change": "Can change agent",
    "delete": "Can delete agent",
    "view": "Can view agent",
}


def create_group(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    # Permissions are normally created after all migrations; create them now (the same rows,
    # so Django's own step later finds them and adds nothing).
    content_type, _ = ContentType.objects.get_or_create(app_label="agents", model="agent")
    permissions = [
        Permission.objects.get_or_create(
            content_type=content_type, codename=f"{action}_agent", defaults={"name": name}
        )[0]
        for action, name in ACTIONS.items()
    ]
    group, _ = Group.objects.get_or_create(name=GROUP)
    group.permissions.add(*permissions)


def remove_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name=GROUP).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("agents", "0002_llm_check"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_group, remove_group)]
