"""HTTP gateway in front of the Triton ensembles."""
