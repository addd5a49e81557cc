//! mysql: tables against a private MariaDB.
