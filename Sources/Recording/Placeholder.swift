// Recording module.
