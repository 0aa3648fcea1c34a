"""The text a notebook cell showed (streams, errors, text/* results), for tests that execute notebooks."""


def cell_text(cell) -> str:
    parts = []
    for out in cell.get("outputs", []):
        if out.output_type == "stream":
            parts.append(out.text)
        elif out.output_type == "error":
            parts.append(f"ERROR {out.ename}: {out.evalue}")
        else:
            parts.extend(str(v) for k, v in out.get("data", {}).items() if k.startswith("text/"))
    return "\n".join(parts)
