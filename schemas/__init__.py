"""Contracts: source configs (pydantic), raw and canonical frame schemas (Pandera), the rule catalogue."""
