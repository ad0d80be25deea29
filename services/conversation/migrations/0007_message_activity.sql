-- What a platform line records (transfers today); empty for what people write.
ALTER TABLE messages ADD COLUMN activity TEXT NOT NULL DEFAULT '';
