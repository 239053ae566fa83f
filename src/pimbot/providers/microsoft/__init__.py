"""The Microsoft cloud providers: ``entra-group`` (group membership), ``entra-role``
(directory roles) and ``azure-rbac`` (Azure role assignments), each direct or through PIM,
with tokens from azure-identity (the ``pimbot[azure]`` extra)."""
