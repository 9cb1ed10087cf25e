"""The permission table as the README shows it (tests/unit/test_access.py checks the README against this)."""

from pingan.handlers.access.permissions import PERMISSIONS, SCOPED_ROLES, SECOND_FACTOR, Permission, Role

# Short column heads, in the README's order.
ROLE_HEADS: dict[Role, str] = {
    Role.viewer: "viewer",
    Role.duty_officer: "duty officer",
    Role.commander: "commander",
    Role.public_information: "public info",
    Role.plan_author: "plan author",
    Role.drill_coordinator: "drill coord.",
    Role.department_liaison: "liaison",
    Role.admin: "admin",
}


def permission_table_markdown() -> str:
    """One row per permission, one column per role: ✓ granted, ✓² granted with a second factor, ✓ᵈ only on
    incidents that involve the liaison's departments."""
    heads = [ROLE_HEADS[r] for r in Role]
    lines = ["| permission | " + " | ".join(heads) + " |", "|---|" + "---|" * len(heads)]
    for permission in Permission:
        cells = []
        for role in Role:
            if permission not in PERMISSIONS[role]:
                cells.append("")
            elif permission in SECOND_FACTOR:
                cells.append("✓²")
            elif role in SCOPED_ROLES and permission.value.startswith("incidents."):
                cells.append("✓ᵈ")
            else:
                cells.append("✓")
        lines.append(f"| `{permission.value}` | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
