"""The README's table of image endpoints, made from the declaration (a test checks the README has it)."""

from __future__ import annotations

from contract.schema import Operation, Product


def _query(operation: Operation) -> str:
    choices = "\\|".join(operation.variant_names)  # a table cell: the bar is escaped
    names = [f"{operation.variant_parameter}={choices}"] if operation.variants else []
    query = ", ".join(f"`{name}`" for name in [*names, *(p.name for p in operation.parameters)])
    return query + "".join(f"; form field `{part.name}`" for part in operation.image_parts)


def api_rows(product: Product) -> str:
    """One markdown row per operation: endpoint, result, query parameters (and further multipart fields)."""
    return "\n".join(f"| `POST {product.path(op)}` | {op.output.description} | {_query(op)} |"
                     for op in product.operations)
