"""The W+ inversion encoder trainer (``gandapt-train encoder``) and its evaluation."""
