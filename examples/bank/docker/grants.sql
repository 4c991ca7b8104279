-- CDC needs replication grants on the legacy database (Debezium documents the same set).
GRANT SELECT, RELOAD, SHOW DATABASES, REPLICATION SLAVE, REPLICATION CLIENT, BINLOG MONITOR ON *.* TO 'cqrs'@'%';
GRANT ALL PRIVILEGES ON *.* TO 'cqrs'@'%';
FLUSH PRIVILEGES;
