"""Every interface to kbchat: the `kbchat` CLI, the Streamlit app, the HTTP API and the widget."""
