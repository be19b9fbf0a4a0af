"""tenantprobe: the plugin the tenancy tests drive, shaped like any plugin with tenant-owned data."""
