"""The product contract: one declaration (``contract.product``) of what the service offers, and its shape."""
