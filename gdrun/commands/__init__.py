"""The console entry points, one module per command; nothing in gdrun imports them."""
