"""Result records in, Markdown leaderboards and plots out."""
