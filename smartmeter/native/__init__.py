"""Native mode: the lakehouse's services as local processes, no Docker engine needed."""
