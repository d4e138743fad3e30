"""Admin pieces that both apps use; they import nothing from either app."""


class ReadOnlyAdminMixin:
    """An admin that lists and shows rows, never adds or changes them.

    Rows stay deletable with the user's delete permission unless `deletable` is False.
    """

    deletable = True

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return self.deletable and super().has_delete_permission(request, obj)
