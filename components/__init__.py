"""Layout pieces and figures shared by the pages (no callbacks that reach across pages)."""
