"""The README a new user reads: short, first screen from clone to `livecam demo`, every link resolves."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
MAX_README_LINES = 250
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")


def prose(text: str) -> str:
    """The text without fenced code blocks and inline code (links there are not links)."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
    return re.sub(r"`[^`\n]*`", "", text)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = heading.strip().lower().replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", path.read_text(encoding="utf-8"), flags=re.M | re.S)
    return {slug(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.+?)\s*#*$", text, flags=re.M)}


def test_docs_exist():
    assert len(DOCS) >= 5 and not (ROOT / "docs" / "readme").exists()


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_resolves_inside_the_repo(doc):
    bad = []
    for target in LINK.findall(prose(doc.read_text(encoding="utf-8"))):
        if re.match(r"[a-z]+://|mailto:", target):
            continue  # external: not checked offline
        path, _, anchor = target.partition("#")
        dest = (doc.parent / path).resolve() if path else doc
        if not dest.exists() or ROOT not in dest.parents and dest != ROOT:
            bad.append(f"{target}: {path} is not in the repo")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            bad.append(f"{target}: no heading #{anchor} in {dest.relative_to(ROOT)}")
    assert not bad, f"{doc.relative_to(ROOT)}: " + "; ".join(bad)


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_python_m_command_names_a_module_of_the_repo(doc):
    """`python -m X` in the docs runs from a clone: X must exist (catches moved harnesses)."""
    missing = []
    for module in set(re.findall(r"python3? -m ((?:livecam|benchmarks)[\w.]*)", doc.read_text(encoding="utf-8"))):
        base = ROOT.joinpath(*module.split("."))
        if not (base.with_suffix(".py").exists() or (base / "__main__.py").exists()):
            missing.append(module)
    assert not missing, f"{doc.relative_to(ROOT)} runs modules that do not exist: {missing}"


def test_readme_is_short_and_its_first_screen_reaches_the_demo():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) < MAX_README_LINES, f"README.md has {len(lines)} lines (limit {MAX_README_LINES})"
    first_screen = "\n".join(lines[:25])
    assert "pip install" in first_screen and "livecam demo" in first_screen
    assert first_screen.index("pip install") < first_screen.index("livecam demo")


def test_readme_has_the_sections_a_user_needs():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    for heading in ("Responsible use", "Install", "The two commands", "Virtual camera", "The terminal UI",
                    "Profiles", "Models and licences", "Troubleshooting", "More documentation"):
        assert re.search(rf"^## {heading}$", text, flags=re.M), heading
    assert 'pip install -e ".[cpu,dev]"' in text and "python -m pytest" in text


def test_slug_follows_github():
    assert slug("Your first real run") == "your-first-real-run"
    assert slug("`livecam bench`") == "livecam-bench"
    assert slug("Tracking on synthetic scenes (2-core build box)") == "tracking-on-synthetic-scenes-2-core-build-box"
