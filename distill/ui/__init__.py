"""What the Streamlit app (``ui/app.py``) draws from: the runs on disk, one question asked live, the figures."""
