"""ComfyUI's prompt-weight syntax (sd1_clip's parse_parentheses and token_weights) restated from its
rules for the parity tests: "(x)" multiplies the weight by 1.1, "(x:w)" sets it when w parses."""


def top_level_groups(text):
    groups, current, depth = [], "", 0
    for char in text:
        if char == "(":
            if depth == 0 and current:
                groups.append(current)
                current = ""
            current += char
            depth += 1
        elif char == ")":
            depth -= 1
            current += char
            if depth == 0:
                groups.append(current)
                current = ""
        else:
            current += char
    if current:
        groups.append(current)
    return groups


def weighted_segments(text, weight=1.0):
    segments = []
    for group in top_level_groups(text):
        if len(group) < 2 or group[0] != "(" or group[-1] != ")":
            segments.append((group, weight))
            continue
        inner, inner_weight = group[1:-1], weight * 1.1
        colon = inner.rfind(":")
        if colon > 0:
            try:
                inner_weight = float(inner[colon + 1:])
                inner = inner[:colon]
            except ValueError:
                pass
        segments += weighted_segments(inner, inner_weight)
    return segments
