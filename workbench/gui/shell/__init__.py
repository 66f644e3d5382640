"""The window and what only it uses: documents, menus, help, the Runs list, start-up."""
